# attack.gp - PGD: the probability of the attacked class (the target, or the true label when
# untargeted) against epsilon, per (model, input), or per model the mean over its inputs.
# Parameters: stem (data: stem.'_probs.dat', columns eps p_0 .. p_{n-1}), n, cap0.., title,
# thr (the confidence threshold, drawn dashed).
load plotsdir.'/style.gp'

set title title font ',12'
set border 3 lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6
set grid xtics ytics lc rgb '#e0e0e0'
set xlabel 'epsilon'
set ylabel 'probability of the attacked class'
set yrange [0:1.05]
set key inside right bottom vertical font ',10' box lc rgb '#c0c0c0'
set arrow from graph 0, first thr to graph 1, first thr nohead dt 2 lc rgb '#909090'
plot for [i = 0:n - 1] stem.'_probs.dat' using 1:(column(i + 2)) with linespoints \
     pt 7 ps 0.7 lw 2 title value(sprintf('cap%d', i))
