"""ESC/POS: the byte stream a POS sends a receipt printer, parsed and rendered."""
