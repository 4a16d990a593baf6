# attack_channels.gp - the mean |perturbation| of the R, G and B channels, grouped by model.
# Parameters: stem (data: stem.'_channels.dat': "model" R G B), m, title.
load plotsdir.'/style.gp'

set title title font ',12'
set ylabel 'mean |delta|'
set xlabel 'model'
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:m - 0.4]
set grid ytics
set style fill solid 0.9 border rgb '#ffffff'
set boxwidth 0.25
set key outside right top vertical
set xtics () nomirror
file = stem.'_channels.dat'
plot file using ($0 - 0.27):2:xtic(1) with boxes lc rgb '#d62728' title 'R', \
     file using ($0):3 with boxes lc rgb '#2ca02c' title 'G', \
     file using ($0 + 0.27):4 with boxes lc rgb '#1f77b4' title 'B', \
     file using ($0 - 0.27):2:(sprintf('%.3f', $2)) with labels offset 0, 0.7 font ',8' notitle, \
     file using ($0):3:(sprintf('%.3f', $3)) with labels offset 0, 0.7 font ',8' notitle, \
     file using ($0 + 0.27):4:(sprintf('%.3f', $4)) with labels offset 0, 0.7 font ',8' notitle
