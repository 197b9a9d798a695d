"""The site's stylesheet and its one script, written beside the pages (no CDN, no server)."""

STYLE_CSS = """\
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
a { color: #0b5cad; } .muted { color: #57606a; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .3em .7em; border-bottom: 1px solid #d0d7de; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.top1 { font-size: 1.3em; font-weight: 600; }
code, pre { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f6f8fa; }
pre { padding: .7em; overflow-x: auto; } td.fact { white-space: pre-line; }
img { max-width: 100%; height: auto; }
"""

#: Sorts any ``table.sortable`` by a clicked header (numbers by their ``data-sort``), and
#: on opening by ``#sort=COLUMN`` or ``#sort=-COLUMN`` in the address (a shareable view).
SORT_JS = """\
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const key = (row) => {
    const cell = row.cells[column];
    const value = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    const number = parseFloat(value);
    return value !== "" && !isNaN(number) && isFinite(value) ? number : value.toLowerCase();
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === y) return 0;
    if (x === "") return 1;
    if (y === "") return -1;
    return (x < y ? -1 : 1) * (descending ? -1 : 1);
  });
  rows.forEach((row) => body.appendChild(row));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) =>
    th.setAttribute("aria-sort", i === column ? (descending ? "descending" : "ascending") : "none"));
}
document.querySelectorAll("table.sortable").forEach((table) => {
  Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
    th.addEventListener("click", () => sortTable(table, column, th.getAttribute("aria-sort") === "ascending"));
  });
  const wanted = /^#sort=(-?)([\\w-]+)$/.exec(decodeURIComponent(location.hash));
  if (wanted) {
    const column = Array.from(table.tHead.rows[0].cells).findIndex((th) => th.dataset.key === wanted[2]);
    if (column >= 0) sortTable(table, column, wanted[1] === "-");
  }
});
"""
