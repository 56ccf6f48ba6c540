"""tillgate drivers: byte ports, ESC/POS, receipt printers, card readers and scanners."""
