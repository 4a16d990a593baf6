# filters.gp - conv weights: a grid of RGB filters (3-channel inputs, each filter min-max
# normalised; the study's Figure 9) or, for deeper layers, one row of per-input-channel
# heatmaps per filter on one symmetric colour scale.
# Parameters: file (one index per filter: x y r g b, or per (filter, channel): x y w), rgb, n,
# ncols, nrows, kw, kh, cellw, cellh, vmax, title, xlabel, ylabel.
load plotsdir.'/style.gp'

unset grid
unset border
set title title
set size ratio -1
set xrange [-0.5 - 0.5:ncols * cellw - 0.5]
set yrange [-(nrows * cellh) + 0.5:1.5]
if (rgb) {
    unset tics
    # Filter numbers under each filter.
    set xlabel xlabel
    plot for [i = 0:n - 1] file index i using 1:2:3:4:5 with rgbimage notitle, \
         for [i = 0:n - 1] '+' using ((i % ncols) * cellw + (kw - 1) / 2.0):(-(int(i / ncols)) * cellh - kh + 0.05):(sprintf('%d', i)) every ::0::0 with labels font ',8' tc rgb '#404040' notitle
} else {
    set tics scale 0 textcolor rgb '#303030'
    set xtics ()
    set ytics ()
    do for [c = 0:ncols - 1] { set xtics add (sprintf('%d', c) c * cellw + (kw - 1) / 2.0) }
    do for [o = 0:nrows - 1] { set ytics add (sprintf('%d', o) -o * cellh - (kh - 1) / 2.0) }
    set xtics font ',8'
    set ytics font ',8'
    set xlabel xlabel
    set ylabel ylabel
    set palette defined (0 '#2166ac', 0.5 '#f7f7f7', 1 '#b2182b')
    set cbrange [-vmax:vmax]
    set cblabel 'weight'
    set cbtics out scale 0.5
    set colorbox vertical user origin graph 1.03, graph 0.2 size character 1.5, graph 0.6
    plot for [i = 0:n - 1] file index i using 1:2:3 with image notitle
}
