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
  const wanted = /^#sort=(-?)([\w-]+)$/.exec(decodeURIComponent(location.hash));
  if (wanted) {
    const column = Array.from(table.tHead.rows[0].cells).findIndex((th) => th.dataset.key === wanted[2]);
    if (column >= 0) sortTable(table, column, wanted[1] === "-");
  }
});
