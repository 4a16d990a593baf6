# sae_iv_sweep.gp - per model (side by side), the mean probability of every class against the
# scale of one SAE feature. Parameters: file<j> (scale, then k probabilities), cap<j>, k, m,
# title.
load plotsdir.'/style.gp'

colours = '#d62728 #2ca02c #1f77b4 #bcbd22 #17becf #e377c2 #ff7f0e #000000 #9467bd #8c564b'
set multiplot layout 1, m title title font ',12'
set xlabel 'scale of the feature'
set ylabel 'mean probability'
set yrange [0:1]
set key outside right font ',9'
do for [j = 0:m - 1] {
    set title value(sprintf('cap%d', j)) font ',10'
    plot for [q = 0:k - 1] value(sprintf('file%d', j)) using 1:(column(q + 2)) with linespoints \
         pt 7 ps 0.4 lw 2 lc rgb word(colours, q + 1) title sprintf('class %d', q)
}
unset multiplot
