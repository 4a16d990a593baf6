# table.gp - runner table --plot: per metric a panel, per group its mean with the 95%
# Student-t interval as an error bar (no bar for n = 1) and every run's value as a small dot.
# Parameters (runner/table.c): datadir, n_groups, n_metrics, metric_<m> (1-based: the panel's
# title), group_<k> (0-based: the x tic labels).
# Data: datadir/table_<m-1>.dat: block 0 rows "k mean low high n", block 1 rows "k value".
load plotsdir.'/style.gp'

set xrange [-0.6:n_groups - 0.4]
set xtics () rotate by -30 left nomirror
set for [k=0:n_groups - 1] xtics add (value(sprintf('group_%d', k)) k)
set bmargin 9
set key top right opaque box
if (n_metrics > 1) {
    set multiplot layout n_metrics, 1 title 'mean and 95% Student-t interval per group' font ',13'
}
do for [m=1:n_metrics] {
    file = sprintf('%s/table_%d.dat', datadir, m - 1)
    set title value(sprintf('metric_%d', m))
    set ylabel (strstrt(value(sprintf('metric_%d', m)), '(%)') ? 'accuracy (%)' : 'value')
    set autoscale y
    set offsets 0, 0, graph 0.08, graph 0.08
    plot file index 1 using ($1 + 0.12):2 with points pt 7 ps 0.5 lc rgb '#909090' title 'runs', \
         file index 0 using 1:2:3:4 with yerrorbars pt 7 ps 1.1 lw 2 lc rgb '#1f77b4' \
         title 'mean, 95% CI', \
         file index 0 using 1:2:(sprintf('n=%d', $5)) with labels offset -2.6, 0 font ',8' \
         tc rgb '#505050' notitle
}
if (n_metrics > 1) {
    unset multiplot
}
