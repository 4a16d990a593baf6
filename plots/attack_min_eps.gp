# attack_min_eps.gp - per model, the share of inputs whose smallest successful epsilon is at or
# below x (an empirical distribution function; inputs never reached keep it below 1).
# Parameters: stem (data: stem_min_eps_<j>.dat: eps share), m, model0.., emax, title.
load plotsdir.'/style.gp'

set title title font ',12'
set border 3 lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6
set grid xtics ytics lc rgb '#e0e0e0'
set xlabel 'epsilon'
set ylabel 'share of inputs attacked successfully'
set xrange [0:emax]
set yrange [0:1.05]
set key inside right bottom vertical font ',10' box lc rgb '#c0c0c0'
colours = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #7f7f7f'
plot for [j = 0:m - 1] sprintf('%s_min_eps_%d.dat', stem, j) using 1:2 with steps lw 2 \
     lc rgb word(colours, j + 1) title value(sprintf('model%d', j))
