# sae_training.gp - an SAE's training metrics against the epoch, one line per model: loss and
# MSE (log scale), fraction of variance explained, mean L0, dead and dense fractions.
# Parameters: file (epoch, then per model: loss mse fve l0 dead dense), m, model0.., title.
load plotsdir.'/style.gp'

colours = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #7f7f7f'
names = 'loss MSE variance_explained L0 (mean active features) dead_fraction dense_fraction'
labels = "'loss' 'MSE' 'fraction of variance explained' 'mean L0' 'dead fraction' 'dense fraction'"
set multiplot layout 2, 3 title title font ',12'
set xlabel 'epoch'
set key bottom right font ',9'
do for [q = 0:5] {
    if (q <= 1) { set logscale y } else { unset logscale y }
    if (q >= 4) { set yrange [0:1.05] } else { set yrange [*:*] }
    set title word(labels, q + 1) font ',11'
    plot for [j = 0:m - 1] file using 1:(column(2 + 6 * j + q)) with lines lw 2 \
         lc rgb word(colours, j + 1) title value(sprintf('model%d', j))
}
unset multiplot
