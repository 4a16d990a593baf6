# attack_trace.gp - per model (one panel each), the attacked class' probability of the first
# input against the PGD iteration, one line per epsilon.
# Parameters: stem (data: stem_trace_<j>.dat: iteration, then one column per epsilon), m, ne,
# eps0.., model0.., title.
load plotsdir.'/style.gp'

set multiplot layout 1, m title title font ',12'
set border 3 lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6
set grid xtics ytics lc rgb '#e0e0e0'
set xlabel 'iteration'
set ylabel 'probability'
set yrange [0:1.05]
set key outside right top vertical font ',8'
set palette defined (0 '#c6dbef', 1 '#08306b')
unset colorbox
do for [j = 0:m - 1] {
    if (j < m - 1) { unset key } else { set key outside right top vertical font ',8' }
    set title value(sprintf('model%d', j)) font ',11'
    plot for [e = 0:ne - 1] sprintf('%s_trace_%d.dat', stem, j) using 1:(column(e + 2)) \
         with lines lw 1.5 lc palette frac (ne > 1 ? e / (ne - 1.0) : 1) \
         title sprintf('eps %g', value(sprintf('eps%d', e)))
}
unset multiplot
