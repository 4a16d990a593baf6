# saliency.gp - saliency maps of several models side by side: one row per input, the input
# then one heatmap per model (|d CE / d input| summed over channels, each scaled to its max).
# Parameters: n, m, iw, ih, title, stem (data: stem_<i>_image.dat, stem_<i>_<j>.dat: x y value),
# cap<i> (what input i is), t<i>_<j> (model j's caption), wrong<i>_<j>.
load plotsdir.'/style.gp'

# Black - red - yellow - white ("hot"): zero gradient is black.
set palette defined (0 '#000000', 0.35 '#b00000', 0.7 '#ffb000', 1 '#ffffff')
top = 70.0 / H
rowh = (1.0 - top) / n
colw = 0.93 / (m + 1)
set multiplot title title font ',13'
do for [i = 0:n - 1] {
    y0 = 1.0 - top - (i + 1) * rowh
    unset border
    unset tics
    unset grid
    set size ratio -1
    set xrange [-0.5:iw - 0.5]
    set yrange [-(ih - 0.5):0.5]
    unset colorbox
    set origin 0.0, y0
    set size colw, rowh
    set title value(sprintf('cap%d', i)) font ',10' tc rgb '#202020'
    plot sprintf('%s_%d_image.dat', stem, i) using 1:2:3:4:5 with rgbimage notitle
    do for [j = 0:m - 1] {
        set origin (j + 1) * colw, y0
        set size colw, rowh
        set cbrange [0:1]
        if (j == m - 1) {
            set colorbox vertical user origin graph 1.05, graph 0 size character 1.2, graph 1
            set cbtics 0.5 out scale 0.5
            set cblabel '|gradient| / max'
        } else {
            unset colorbox
        }
        set title value(sprintf('t%d_%d', i, j)) font ',10' tc rgb (value(sprintf('wrong%d_%d', i, j)) ? '#d00000' : '#202020')
        plot sprintf('%s_%d_%d.dat', stem, i, j) using 1:2:3 with image notitle
    }
}
unset multiplot
