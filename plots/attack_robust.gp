# attack_robust.gp - per model, robust accuracy (solid) and attack success rate (dashed)
# against epsilon. Parameters: stem (data: stem.'_curves.dat': eps, then per model robust,
# success), m, model0.., title.
load plotsdir.'/style.gp'

set title title font ',12'
set border 3 lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6
set grid xtics ytics lc rgb '#e0e0e0'
set xlabel 'epsilon'
set ylabel 'share of inputs'
set yrange [0:1.05]
set key outside right top vertical font ',10'
colours = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #7f7f7f'
plot for [j = 0:m - 1] stem.'_curves.dat' using 1:(column(2 * j + 2)) with linespoints \
         pt 7 ps 0.7 lw 2 lc rgb word(colours, j + 1) \
         title value(sprintf('model%d', j)).' robust accuracy', \
     for [j = 0:m - 1] stem.'_curves.dat' using 1:(column(2 * j + 3)) with linespoints \
         pt 6 ps 0.7 lw 2 dt 2 lc rgb word(colours, j + 1) \
         title value(sprintf('model%d', j)).' success rate'
