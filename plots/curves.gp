# curves.gp - training curves: loss and accuracy (%), per step (lines) and per epoch (points).
# Parameters: title, xlabel, xmax, loss_step, loss_epoch, acc_step, acc_epoch (space-separated
# split names; data in datadir/curve_<step|epoch>_<split>_<loss|accuracy>.dat, columns x value).
load plotsdir.'/style.gp'

file(kind, s, m) = sprintf('%s/curve_%s_%s_%s.dat', datadir, kind, s, m)
# Per-step curves are noisy: a thin, half-transparent line of the split's colour.
faint(s) = '#80'.split_colour(s)[2:]

set multiplot layout 1, 2 title title font ',13'
set xlabel xlabel
# A little room on the right so the last epoch's points are not cut in half.
set xrange [0:xmax * 1.02]
if (xlabel eq 'epoch') {
    if (xmax <= 1.5) { set xtics 0.25 } else { if (xmax <= 20) { set xtics 1 } }
    set mxtics 1
}
set key bmargin center horizontal reverse Left samplen 2.5 width 1 spacing 1.1
set bmargin 5.5

# ---- loss
set title 'loss'
set ylabel 'loss'
set yrange [0:*]
if (words(loss_step) + words(loss_epoch) == 0) {
    # An empty panel: gnuplot needs something to plot, so a line outside the range.
    set label 1 'no loss recorded' at graph 0.5, 0.5 center
    set yrange [0:1]
    plot -1 notitle
    unset label 1
} else {
    plot for [s in loss_step] file('step', s, 'loss') using 1:2 with lines lw 1.5 lc rgb faint(s) title s.' (steps)', \
         for [s in loss_epoch] file('epoch', s, 'loss') using 1:2 with linespoints lw 2 pt 7 ps 1.1 lc rgb split_colour(s) title split_title(s)
}

# ---- accuracy
set title 'accuracy'
set ylabel 'accuracy (%)'
set yrange [0<*:*<100]
if (words(acc_step) + words(acc_epoch) == 0) {
    set label 1 'no accuracy recorded' at graph 0.5, 0.5 center
    set yrange [0:100]
    plot -1 notitle
} else {
    plot for [s in acc_step] file('step', s, 'accuracy') using 1:2 with lines lw 1.5 lc rgb faint(s) title s.' (steps)', \
         for [s in acc_epoch] file('epoch', s, 'accuracy') using 1:2 with linespoints lw 2 pt 7 ps 1.1 lc rgb split_colour(s) title split_title(s)
}
unset multiplot
