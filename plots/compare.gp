# compare.gp - several runs side by side (runner compare; runner/compare.c writes the data).
# Parameters: which ('epochs' | 'summary'), datadir, labels (space-separated run labels, in
# order), control (1-based index of the control run, 0: none), epoch (the summary's),
# max_epoch.
# epochs: data in datadir/compare_epochs_<k>.dat (epoch, then one column per line metric);
#   panels (the data columns to draw, one panel each), panel_title_<i>, panel_chance_<i>
#   (a dotted chance line at that value, 0: none), panel_percent_<i> (1: an accuracy in %),
#   lines_title (heading over several panels).
# summary: data in datadir/compare_summary.dat (label, one column per bar metric, epoch);
#   n_bars, bar_title_<b>, bars_title, bars_percent (1: every bar is an accuracy in %).
load plotsdir.'/style.gp'

n = words(labels)
file(k) = sprintf('%s/compare_epochs_%d.dat', datadir, k)
# The control first in a fixed dark grey when there is one; then a qualitative palette.
palette = '#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf #bcbd22 #7f7f7f'
run_colour(k) = (k == control) ? '#303030' : word(palette, (k - 1) % 10 + 1)
run_dash(k) = (k == control) ? 2 : 1
bar_palette = '#ff7f0e #2ca02c #1f77b4 #d62728 #9467bd #8c564b #e377c2 #17becf'

if (which eq 'epochs') {
    n_panels = words(panels)
    set xlabel 'epoch'
    set xrange [0.5:max_epoch + 0.5]
    set xtics 1
    set key bottom right spacing 1.1
    if (n_panels > 1) {
        set multiplot layout 1, n_panels title lines_title font ',13'
    }
    do for [i=1:n_panels] {
        col = int(word(panels, i))
        chance = value(sprintf('panel_chance_%d', i))
        set title value(sprintf('panel_title_%d', i))
        if (value(sprintf('panel_percent_%d', i))) {
            set ylabel 'accuracy (%)'
            set yrange [0:100]
        } else {
            set ylabel 'value'
            set autoscale y
        }
        if (i > 1) {
            set key center right opaque box spacing 1.1 width 1
        }
        if (chance > 0) {
            plot for [k=1:n] file(k) using 1:col with linespoints lw 2 pt 7 ps 0.9 dt run_dash(k) \
                 lc rgb run_colour(k) title word(labels, k), \
                 chance with lines dt 3 lc rgb '#909090' title 'chance'
        } else {
            plot for [k=1:n] file(k) using 1:col with linespoints lw 2 pt 7 ps 0.9 dt run_dash(k) \
                 lc rgb run_colour(k) title word(labels, k)
        }
    }
    if (n_panels > 1) {
        unset multiplot
    }
} else {
    set title sprintf('%s at epoch %d (a run that stopped earlier: its last epoch)', bars_title, epoch)
    set style data histogram
    gap = 1.2
    set style histogram clustered gap 1.2
    set style fill solid 0.85 border rgb '#404040'
    set boxwidth 0.9
    if (bars_percent) {
        set yrange [0:112]
        set ylabel 'accuracy (%)'
    } else {
        set ylabel 'value'
    }
    set xtics rotate by -25 scale 0
    set grid noxtics
    set key top left horizontal
    summary = datadir.'/compare_summary.dat'
    # bar b of a cluster sits at its centre + (b - (n_bars + 1) / 2) bar widths, a cluster being
    # n_bars + gap bar widths wide; its value is written above it
    shift(b) = (b - (n_bars + 1) / 2.0) / (n_bars + gap)
    lift = bars_percent ? 3 : 0
    plot for [b=1:n_bars] summary using (column(b + 1)):xtic(1) \
             title value(sprintf('bar_title_%d', b)) lc rgb word(bar_palette, b), \
         for [b=1:n_bars] '' using ($0 + shift(b)):(column(b + 1) + lift):(sprintf('%.1f', column(b + 1))) \
             with labels font ',8' offset 0, (bars_percent ? 0 : 0.7) notitle
}
