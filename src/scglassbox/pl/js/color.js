// Colour the cells by group (0), by the picked feature's L2 contribution (1) or by each
// cell's top feature (2); update the legend, colour bar and hover text to match.
const mode = color_rb.active;
let k = meta.genes.indexOf(auto.value);
if (k < 0 && auto.value) {
    // Case-insensitive match first (the box completes case-insensitively).
    const low = auto.value.toLowerCase();
    k = meta.genes.findIndex((g) => g.toLowerCase() === low);
    if (k >= 0) auto.value = meta.genes[k];  // shows the gene's own spelling (runs this again)
}
// Say why a name is not shown; the plot keeps the previous feature. A Div renders HTML:
// the typed name is escaped.
if (k < 0) {
    const name = esc(auto.value);
    const low = auto.value.toLowerCase();
    const modelled = meta.all_genes.some((g) => g.toLowerCase() === low);
    status.text = modelled
        ? `<b>${name}</b> is modelled but not sent to this page: explore(..., genes=[&quot;${name}&quot;]) sends it.`
        : `<b>${name}</b> is not a feature of this model.`;
    k = meta.current[0];
} else {
    status.text = "";
}
meta.current[0] = k;
const gene = meta.genes[k];
const fval = src.data.fval, fcon = src.data.fcon, c = src.data.c, v = vals.data.v;
let cmax = 0.0;
for (let i = 0; i < N; i++) {
    fcon[i] = contrib(i, k, 0);
    if (fcon[i] > cmax) cmax = fcon[i];
    fval[i] = meta.has_values ? v[i * K + k] * meta.vscale[k] + meta.voffset[k] : NaN;
}
if (mode === 1) {
    for (let i = 0; i < N; i++) c[i] = fcon[i];
    mapper.setv({palette: meta.gradient, low: 0.0, high: cmax > 0 ? cmax : 1.0});  // one redraw
    cbar.visible = true;  // not the plot: changing the layout would redraw everything
    legend.text = `<b>${esc(gene)}</b><br>L2 contribution`;
} else {
    const codes = mode === 0 ? src.data.grp : src.data.top;
    const colors = mode === 0 ? meta.group_colors : meta.top_colors;
    for (let i = 0; i < N; i++) c[i] = codes[i] + 0.5;
    mapper.setv({palette: colors, low: 0.0, high: colors.length});
    cbar.visible = false;
    // Built (and escaped) once in Python: the one legend implementation.
    legend.text = mode === 0 ? meta.group_legend : meta.top_legend;
}
// Tooltip labels are set as text by Bokeh, not parsed as HTML.
hover.tooltips = meta.base_tooltips.concat([
    [`${gene} ${meta.value_label}`, '@fval{0.00}'],
    [`${gene} L2 contribution`, '@fcon{0.0000}'],
]);
src.change.emit();
