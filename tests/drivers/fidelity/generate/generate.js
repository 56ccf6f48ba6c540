// Writes the ESC/POS fidelity corpus: receipts made by three independent encoders, each
// with the text its author meant to print (../corpus/<name>.bin and <name>.txt).
//
// Run from a scratch folder outside the repository that has this folder's package.json
// installed (see README.md):  node /path/to/generate.js /path/to/corpus
//
// The .txt is written here by hand, from the receipt's description, not from our decoder:
// it says what a person reads on the paper, in the conventions of `tillgate decode`
// (double- and quadruple-size letters as plain letters, non-text as a bracketed note).
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

// The packages live in the scratch folder (the current directory), not beside this script.
const need = createRequire(path.join(process.cwd(), 'package.json'));
const receiptline = need('receiptline');
const ReceiptPrinterEncoder = need('@point-of-sale/receipt-printer-encoder');
const { ThermalPrinter, PrinterTypes, CharacterSet } = need('node-thermal-printer');

const out = path.resolve(process.argv[2] || path.join(__dirname, '..', 'corpus'));
const COLUMNS = 42; // Epson font A on 80 mm paper at 512 dots

// ---------------------------------------------------------------------------------------
// receiptline (markdown-like receipts; columns with ESC $ / ESC \, rules in code page 1)

function rl(doc, encoding, options = {}) {
  const printer = { cpl: COLUMNS, encoding, command: 'escpos', cutting: true, ...options };
  return Buffer.from(receiptline.transform(doc, printer), 'binary');
}

// receiptline ends each job with GS r 1 (paper sensor status), shown as a note.
const RL_END = ['', '----- partial cut -----', '[STATUS GS r 49: paper sensor status]'];

// Helpers that write the intended text of a laid-out line, so widths are not counted by eye.
const pad = (text, width, align = 'left') => {
  const gap = width - [...text].length;
  const lead = align === 'right' ? gap : align === 'center' ? Math.floor(gap / 2) : 0;
  return ' '.repeat(lead) + text + ' '.repeat(gap - lead);
};
const lr = (left, right, width = COLUMNS) => pad(left, width - [...right].length) + right;
const centred = (text, width = COLUMNS) => pad(text, width, 'center').trimEnd();
const rule = (widths, [l, m, r], fill = '─') => l + widths.map((w) => fill.repeat(w)).join(m) + r;
const cells = (widths, texts, aligns) =>
  '│' + widths.map((w, i) => pad(texts[i], w, aligns[i])).join('│') + '│';

const receipts = {};

receipts['receiptline-cp866-ruled'] = {
  bytes: rl(`{align:center}
^^^Продукты у дома
ул. Ленина, 1
Кассовый чек № 1013
{border:line; width:*,3,7,8}
Товар | Кол| Цена| Сумма
-
Хлеб Бородинский | 1| 54.90| 54.90
Молоко 3,2% 1л | 2| 89.90| 179.80
Сыр Российский | 1| 596.85| 596.85
{border:space; width:*,16}
-
^ИТОГО | ^831.55
НАЛИЧНЫМИ | 1000.00
СДАЧА | 168.45
{width:*}
Спасибо за покупку!
`, 'cp866'),
  text: [
    centred('Продукты у дома'),
    centred('ул. Ленина, 1'),
    centred('Кассовый чек № 1013'),
    // 42 columns less 5 rules: the * column takes what 3 + 7 + 8 leave
    rule([19, 3, 7, 8], '╭┬╮'),
    cells([19, 3, 7, 8], ['Товар', 'Кол', 'Цена', 'Сумма'], ['left', 'right', 'right', 'right']),
    rule([19, 3, 7, 8], '├┼┤'),
    cells([19, 3, 7, 8], ['Хлеб Бородинский', '1', '54.90', '54.90'], ['left', 'right', 'right', 'right']),
    cells([19, 3, 7, 8], ['Молоко 3,2% 1л', '2', '89.90', '179.80'], ['left', 'right', 'right', 'right']),
    cells([19, 3, 7, 8], ['Сыр Российский', '1', '596.85', '596.85'], ['left', 'right', 'right', 'right']),
    rule([19, 3, 7, 8], '╰┴╯'),
    '─'.repeat(COLUMNS),
    lr('ИТОГО', '831.55'),
    lr('НАЛИЧНЫМИ', '1000.00'),
    lr('СДАЧА', '168.45'),
    centred('Спасибо за покупку!'),
    ...RL_END,
  ],
};

receipts['receiptline-cp866-columns'] = {
  // The user's receipt from issue 14: no rules, name and amount apart at their columns.
  bytes: rl(`Чек № 2207
{width:*,10}
Хлеб Бородинский | 54.90
Кефир 1% 900 г | 75.00
Гречка ядрица 900 г | 129.00
{width:*,14}
^^ИТОГО | ^^258.90
`, 'cp866'),
  text: [
    '                Чек № 2207',
    'Хлеб Бородинский                     54.90',
    'Кефир 1% 900 г                       75.00',
    'Гречка ядрица 900 г                 129.00',
    'ИТОГО                               258.90',
    ...RL_END,
  ],
};

receipts['receiptline-cp437-margins'] = {
  // A 40-column print area inside one column of margin on each side (GS L, GS W).
  bytes: rl(`^Corner Shop
Receipt 2041
{border:line; width:*,3,8}
Item | Qty| Amount
-
Coffee beans 500g | 1| 12.50
Croissant | 3| 4.50
{border:space; width:*,10}
-
TOTAL | 17.00
`, 'cp437', { cpl: 40, margin: 1, marginRight: 1 }),
  text: [
    ' ' + centred('Corner Shop', 40),
    ' ' + centred('Receipt 2041', 40),
    ' ' + rule([25, 3, 8], '╭┬╮'),
    ' ' + cells([25, 3, 8], ['Item', 'Qty', 'Amount'], ['left', 'right', 'right']),
    ' ' + rule([25, 3, 8], '├┼┤'),
    ' ' + cells([25, 3, 8], ['Coffee beans 500g', '1', '12.50'], ['left', 'right', 'right']),
    ' ' + cells([25, 3, 8], ['Croissant', '3', '4.50'], ['left', 'right', 'right']),
    ' ' + rule([25, 3, 8], '╰┴╯'),
    ' ' + '─'.repeat(40),
    ' ' + lr('TOTAL', '17.00', 40),
    ...RL_END,
  ],
};

receipts['receiptline-cp852'] = {
  bytes: rl(`^Sklep Żabka
{width:*,10}
Chleb żytni | 6.49
Żółty ser 200 g | 8.99
Masło ekstra | 7.29
-
^SUMA PLN | ^22.77
`, 'cp852'),
  text: [
    '               Sklep Żabka',
    'Chleb żytni                           6.49',
    'Żółty ser 200 g                       8.99',
    'Masło ekstra                          7.29',
    '──────────────────────────────────────────',
    'SUMA PLN                             22.77',
    ...RL_END,
  ],
};

receipts['receiptline-cp858'] = {
  bytes: rl(`Bäckerei Müller
{width:*,14}
Brötchen | € 1.20
Käsekuchen | € 3.80
-
^Summe | ^€ 5.00
`, 'cp858'),
  text: [
    '             Bäckerei Müller', // receiptline centres it at 13.5 columns
    'Brötchen                            € 1.20',
    'Käsekuchen                          € 3.80',
    '──────────────────────────────────────────',
    'Summe                               € 5.00',
    ...RL_END,
  ],
};

receipts['receiptline-cp1252'] = {
  bytes: rl(`Café du Marché
{width:*,14}
Café crème | 2,80 €
Pâtisserie | 3,50 €
-
^Total | ^6,30 €
`, 'cp1252'),
  text: [
    '              Café du Marché',
    'Café crème                          2,80 €',
    'Pâtisserie                          3,50 €',
    '──────────────────────────────────────────',
    'Total                               6,30 €',
    ...RL_END,
  ],
};

// ---------------------------------------------------------------------------------------
// @point-of-sale/receipt-printer-encoder (lays text out itself with spaces; ESC t per its
// printer model's table; box drawing from CP437)

function rpe(build, codepage) {
  const encoder = new ReceiptPrinterEncoder({ printerModel: 'epson-tm-t88vi', columns: COLUMNS });
  return Buffer.from(build(encoder.initialize().codepage(codepage)).encode());
}

// four lines fed before the cut, one after it
const RPE_END = ['', '', '', '', '----- cut -----', ''];

receipts['receipt-printer-encoder-cp866'] = {
  bytes: rpe((e) => e
    .align('center').width(2).height(2).line('ПЯТЁРОЧКА').width(1).height(1)
    .line('Кассовый чек № 3310')
    .align('left')
    .rule()
    .table(
      [{ width: 26, marginRight: 2, align: 'left' }, { width: 14, align: 'right' }],
      [['Хлеб Бородинский', '54.90'], ['Яйцо С1 10 шт', '119.90'], ['Масло сливочное 82%', '229.00']],
    )
    .rule({ style: 'double' })
    .table(
      [{ width: 20, align: 'left' }, { width: 22, align: 'right' }],
      [[(x) => x.bold(true).width(2).height(2).text('ИТОГ'), (x) => x.bold(true).width(2).height(2).text('=403.80')]],
    )
    .align('center').width(4).height(4).line('№ 7').width(1).height(1)
    .box({ width: 30, align: 'center', style: 'single' }, 'Спасибо!')
    .cut(), 'cp866'),
  text: [
    '                ПЯТЁРОЧКА',
    '           Кассовый чек № 3310',
    '──────────────────────────────────────────',
    'Хлеб Бородинский                     54.90',
    'Яйцо С1 10 шт                       119.90',
    'Масло сливочное 82%                 229.00',
    '══════════════════════════════════════════',
    'ИТОГ                               =403.80',
    '                   № 7',
    '      ┌────────────────────────────┐',
    '      │          Спасибо!          │',
    '      └────────────────────────────┘',
    ...RPE_END,
  ],
};

receipts['receipt-printer-encoder-wpc1251'] = {
  bytes: rpe((e) => e
    .align('center').bold(true).line('Магнит у дома').bold(false)
    .align('left')
    .table(
      [{ width: 30, align: 'left' }, { width: 12, align: 'right' }],
      [['Вода питьевая 1,5 л', '39.99'], ['Печенье «Юбилейное»', '64.50']],
    )
    .rule()
    .width(2).line('ИТОГО =104.49').width(1)
    .cut(), 'windows1251'),
  text: [
    '              Магнит у дома',
    'Вода питьевая 1,5 л                  39.99',
    'Печенье «Юбилейное»                  64.50',
    '──────────────────────────────────────────',
    'ИТОГО =104.49',
    ...RPE_END,
  ],
};

receipts['receipt-printer-encoder-cp850'] = {
  bytes: rpe((e) => e
    .align('center').width(2).height(2).line('La Tienda').width(1).height(1)
    .align('left')
    .table(
      [{ width: 30, align: 'left' }, { width: 12, align: 'right' }],
      [['Jamón ibérico 100 g', '6.95'], ['Piña', '2.40'], ['Café molido', '4.15']],
    )
    .rule()
    .table(
      [{ width: 21, align: 'left' }, { width: 21, align: 'right' }],
      [[(x) => x.width(2).text('TOTAL'), (x) => x.width(2).text('13.50')]],
    )
    .cut(), 'cp850'),
  text: [
    '                La Tienda',
    'Jamón ibérico 100 g                   6.95',
    'Piña                                  2.40',
    'Café molido                           4.15',
    '──────────────────────────────────────────',
    'TOTAL                                13.50',
    ...RPE_END,
  ],
};

// ---------------------------------------------------------------------------------------
// node-thermal-printer (pads with spaces by character count; ESC ! for sizes)

function ntp(build, characterSet) {
  const printer = new ThermalPrinter({
    type: PrinterTypes.EPSON,
    interface: '/dev/null', // never opened: the bytes are taken from the buffer
    width: COLUMNS,
    characterSet,
    lineCharacter: '=',
  });
  build(printer);
  return Buffer.from(printer.getBuffer());
}

const NTP_END = ['', '', '', '', '', '', '', '', '----- cut -----'];

receipts['node-thermal-printer-pc866'] = {
  bytes: ntp((p) => {
    p.alignCenter(); p.setTextQuadArea(); p.println('ВКУСВИЛЛ'); p.setTextNormal();
    p.println('Кассовый чек № 415');
    p.alignLeft(); p.drawLine();
    p.tableCustom([
      { text: 'Сметана 20%', align: 'LEFT', cols: 22 },
      { text: '1 x 95.00', align: 'LEFT', cols: 10 },
      { text: '=95.00', align: 'RIGHT', cols: 10 },
    ]);
    p.tableCustom([
      { text: 'Творог 5%', align: 'LEFT', cols: 22 },
      { text: '2 x 130.00', align: 'LEFT', cols: 10 },
      { text: '=260.00', align: 'RIGHT', cols: 10 },
    ]);
    p.drawLine();
    p.setTextDoubleHeight(); p.leftRight('ИТОГ', '=355.00'); p.setTextNormal();
    p.leftRight('НАЛИЧНЫМИ', '=400.00');
    p.leftRight('СДАЧА', '=45.00');
    p.alignRight(); p.setTextDoubleWidth(); p.println('СПАСИБО'); p.setTextNormal();
    p.cut();
  }, CharacterSet.PC866_CYRILLIC2),
  text: [
    '                 ВКУСВИЛЛ',
    '            Кассовый чек № 415',
    '==========================================',
    'Сметана 20%           1 x 95.00     =95.00',
    'Творог 5%             2 x 130.00   =260.00',
    '==========================================',
    'ИТОГ                               =355.00',
    'НАЛИЧНЫМИ                          =400.00',
    'СДАЧА                               =45.00',
    '                                   СПАСИБО',
    ...NTP_END,
  ],
};

receipts['node-thermal-printer-wpc1251'] = {
  bytes: ntp((p) => {
    p.alignCenter(); p.bold(true); p.println('Лента'); p.bold(false);
    p.alignLeft();
    p.leftRight('Кофе зерновой 1 кг', '1299.00');
    p.leftRight('Сахар 1 кг', '89.90');
    p.drawLine();
    p.setTextQuadArea(); p.println('ИТОГ 1388.90'); p.setTextNormal();
    p.cut();
  }, CharacterSet.WPC1251_CYRILLIC),
  text: [
    '                  Лента',
    'Кофе зерновой 1 кг                 1299.00',
    'Сахар 1 кг                           89.90',
    '==========================================',
    'ИТОГ 1388.90',
    ...NTP_END,
  ],
};

receipts['node-thermal-printer-wpc1252'] = {
  bytes: ntp((p) => {
    p.alignCenter(); p.setTextDoubleWidth(); p.println('Boulangerie'); p.setTextNormal();
    p.alignLeft();
    p.leftRight('Pain de campagne', '3,20 €');
    p.leftRight('Éclair au café', '2,90 €');
    p.drawLine();
    p.setTextDoubleHeight(); p.leftRight('TOTAL', '6,10 €'); p.setTextNormal();
    p.cut();
  }, CharacterSet.WPC1252),
  text: [
    '               Boulangerie',
    'Pain de campagne                    3,20 €',
    'Éclair au café                      2,90 €',
    '==========================================',
    'TOTAL                               6,10 €',
    ...NTP_END,
  ],
};

// ---------------------------------------------------------------------------------------

fs.mkdirSync(out, { recursive: true });
for (const [name, receipt] of Object.entries(receipts)) {
  fs.writeFileSync(path.join(out, `${name}.bin`), receipt.bytes);
  fs.writeFileSync(path.join(out, `${name}.txt`), receipt.text.join('\n') + '\n', 'utf8');
}
console.log(`${Object.keys(receipts).length} receipts written to ${out}`);
