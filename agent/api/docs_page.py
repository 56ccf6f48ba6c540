# ruff: noqa: E501  (embedded HTML/JS page)
"""The human page at ``/docs``: renders ``/openapi.json`` with no external assets."""

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>tillgate POS API</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
 h1{margin-bottom:.2em} .op{border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.6em 1em}
 .m{display:inline-block;min-width:4.5em;font-weight:bold;color:#fff;border-radius:4px;
    text-align:center;margin-right:.6em;padding:.1em .4em}
 .post{background:#2a7} .get{background:#27a} code{background:#f4f4f4;padding:.1em .3em}
 pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:13px}
 details summary{cursor:pointer;color:#555}
</style></head>
<body><h1>tillgate POS API</h1>
<p>Machine-readable contract: <a href="/openapi.json">/openapi.json</a>.
Money is a decimal string (<code>"89.00"</code>); errors are
<code>{"error": {"code", "message"}}</code>.</p>
<div id="ops">Loading…</div>
<script>
function deref(spec, s){ if(s && s.$ref){ return spec.components.schemas[s.$ref.split('/').pop()]; } return s; }
fetch('/openapi.json').then(r => r.json()).then(spec => {
  const box = document.getElementById('ops'); box.textContent = '';
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const d = document.createElement('div'); d.className = 'op';
      const h = document.createElement('div');
      const m = document.createElement('span'); m.className = 'm ' + method; m.textContent = method.toUpperCase();
      const p = document.createElement('code'); p.textContent = path;
      h.append(m, p); d.append(h);
      const desc = document.createElement('p'); desc.textContent = op.description || op.summary || ''; d.append(desc);
      const body = op.requestBody && op.requestBody.content['application/json'];
      if (body) { const det = document.createElement('details'); const s = document.createElement('summary');
        s.textContent = 'request body'; const pre = document.createElement('pre');
        pre.textContent = JSON.stringify(deref(spec, body.schema), null, 2); det.append(s, pre); d.append(det); }
      const ok = op.responses && op.responses['200'] && op.responses['200'].content;
      if (ok && ok['application/json']) { const det = document.createElement('details'); const s = document.createElement('summary');
        s.textContent = 'response 200'; const pre = document.createElement('pre');
        pre.textContent = JSON.stringify(deref(spec, ok['application/json'].schema), null, 2); det.append(s, pre); d.append(det); }
      box.append(d);
    }
  }
}).catch(e => { document.getElementById('ops').textContent = 'Cannot load /openapi.json: ' + e; });
</script></body></html>
"""
