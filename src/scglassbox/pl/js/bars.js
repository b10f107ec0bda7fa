// Bars: mean (+- SEM) of the chosen view over the selected cells (all cells if none).
const view = view_rb.active;
const sel = src.selected.indices;
const n = sel.length > 0 ? sel.length : N;
const sum = new Float64Array(K), sq = new Float64Array(K);
for (let j = 0; j < n; j++) {
    const i = sel.length > 0 ? sel[j] : j;
    for (let k = 0; k < K; k++) { const c = contrib(i, k, view); sum[k] += c; sq[k] += c * c; }
}
const mean = new Float64Array(K), sem = new Float64Array(K), order = [];
for (let k = 0; k < K; k++) {
    mean[k] = sum[k] / n;
    const variance = n > 1 ? Math.max(sq[k] - n * mean[k] * mean[k], 0) / (n - 1) : 0;
    sem[k] = Math.sqrt(variance / n);
    order.push(k);
}
const signed = view >= 2;
order.sort((a, b) => (signed ? Math.abs(mean[b]) - Math.abs(mean[a]) : mean[b] - mean[a]));
const top = order.slice(0, meta.n_bars).reverse();  // first factor is drawn at the bottom
const genes = top.map(k => meta.genes[k]);  // canvas text: no HTML
bars.data = {
    gene: genes,
    mean: top.map(k => mean[k]),
    lo: top.map(k => mean[k] - sem[k]),
    hi: top.map(k => mean[k] + sem[k]),
    color: top.map(k => (signed ? (mean[k] >= 0 ? meta.pos_color : meta.neg_color)
                                : meta.bar_color)),
};
yrange.factors = genes;
const what = sel.length > 0 ? `${n.toLocaleString()} selected cells`
                            : `all ${N.toLocaleString()} cells`;
bar_fig.title.text = `Mean ${meta.view_labels[view]} (\u00b1 SEM): ${what}`;
