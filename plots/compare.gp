# compare.gp - several runs side by side (runner compare; runner/compare.c writes the data).
# Parameters: which ('epochs' | 'summary'), datadir, labels (space-separated run labels, in
# order; data in datadir/compare_epochs_<k>.dat: epoch, hard-test %, colour-head hard-test %),
# epoch (the summary's), max_epoch, has_colour (1: a run has a colour head).
load plotsdir.'/style.gp'

n = words(labels)
file(k) = sprintf('%s/compare_epochs_%d.dat', datadir, k)
# The control first in a fixed dark grey when it is there; then a qualitative palette.
palette = '#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf #bcbd22 #7f7f7f'
run_colour(k) = (strstrt(word(labels, k), 'erm') > 0) ? '#303030' : word(palette, (k - 1) % 10 + 1)
run_dash(k) = (strstrt(word(labels, k), 'erm') > 0) ? 2 : 1

if (which eq 'epochs') {
    set xlabel 'epoch'
    set ylabel 'accuracy (%)'
    set xrange [0.5:max_epoch + 0.5]
    set xtics 1
    set yrange [0:100]
    set key bottom right spacing 1.1
    if (has_colour) {
        set multiplot layout 1, 2 title 'hard test set (every digit on another digit''s colour)' font ',13'
    }
    set title 'digit accuracy on the hard test set'
    plot for [k=1:n] file(k) using 1:2 with linespoints lw 2 pt 7 ps 0.9 dt run_dash(k) \
         lc rgb run_colour(k) title word(labels, k)
    if (has_colour) {
        set title 'colour-head accuracy on the hard test set (chance 10%)'
        set key center right opaque box spacing 1.1 width 1
        plot for [k=1:n] file(k) using 1:3 with linespoints lw 2 pt 7 ps 0.9 dt run_dash(k) \
             lc rgb run_colour(k) title word(labels, k), \
             10 with lines dt 3 lc rgb '#909090' title 'chance'
        unset multiplot
    }
} else {
    set title sprintf('easy val vs hard test at epoch %d (a run that stopped earlier: its last epoch)', epoch)
    set style data histogram
    set style histogram clustered gap 1.2
    set style fill solid 0.85 border rgb '#404040'
    set boxwidth 0.9
    set yrange [0:112]
    set ylabel 'accuracy (%)'
    set xtics rotate by -25 scale 0
    set grid noxtics
    set key top left horizontal
    summary = datadir.'/compare_summary.dat'
    plot summary using 2:xtic(1) title 'easy val' lc rgb '#ff7f0e', \
         '' using 3 title 'hard test' lc rgb '#2ca02c', \
         '' using ($0 - 0.15):($2 + 3):(sprintf('%.1f', $2)) with labels font ',8' notitle, \
         '' using ($0 + 0.15):($3 + 3):(sprintf('%.1f', $3)) with labels font ',8' notitle
}
