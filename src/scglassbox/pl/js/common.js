// Shared by the explorer's callbacks (prepended to each CustomJS body).
// dat[d][i*K + k] * meta.scale[d*K + k] is the signed contribution of sent gene k to
// embedding dimension d in cell i (int16 values, float32 scale per gene and dimension).
const K = meta.K, D = meta.D, N = src.data.x.length;
const dat = [];
for (let d = 0; d < D; d++) dat.push(cdata.data['d' + d]);

// Names come from user data (group, gene, obs column names): every one that goes into HTML
// passes through esc(), so a name such as <img onerror=...> shows as text and never runs.
function esc(s) {
    return String(s).replace(/[&<>"'`]/g, ch => ({
        '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;',
    })[ch]);
}

function contrib(i, k, view) {
    // view 0: L2, 1: normed L2, 2..: signed dimension view - 2
    if (view >= 2) { const d = view - 2; return dat[d][i * K + k] * meta.scale[d * K + k]; }
    let s = 0.0;
    for (let d = 0; d < D; d++) { const c = dat[d][i * K + k] * meta.scale[d * K + k]; s += c * c; }
    const l2 = Math.sqrt(s);
    if (view === 1) { const t = src.data.total[i]; return t > 0 ? l2 / t : 0.0; }
    return l2;
}
