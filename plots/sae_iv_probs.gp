# sae_iv_probs.gp - per model, the mean class probabilities on the inputs of one colour: SAE
# reconstruction only, one feature ablated, that feature swapped for another colour's.
# Parameters: file<j> (class, SAE, ablated, swapped), cap<j>, m, title.
load plotsdir.'/style.gp'

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:1]
set ylabel 'mean probability'
set xlabel 'class'
set key top right font ',9'
set multiplot layout m, 1 title title font ',12'
do for [j = 0:m - 1] {
    set title value(sprintf('cap%d', j)) font ',10'
    f = value(sprintf('file%d', j))
    plot f using 2:xtic(1) lc rgb '#7f7f7f' title 'SAE only', \
         f using 3 lc rgb '#d62728' title 'ablated', \
         f using 4 lc rgb '#2ca02c' title 'swapped'
}
unset multiplot
