# sae_iv_bulk.gp - per model the accuracy: clean, SAE reconstruction, every colour feature
# ablated, as many random other features ablated (mean, error bar: standard deviation over the
# draws). Parameters: file ("model" clean sae colour random_mean random_sd n), m, title.
load plotsdir.'/style.gp'

set title title
set ylabel 'accuracy'
set yrange [0:1.05]
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left font ',9'
plot file using 2:(0):xtic(1) lc rgb '#7f7f7f' title 'clean', \
     file using 3:(0) lc rgb '#1f77b4' title 'SAE', \
     file using 4:(0) lc rgb '#d62728' title 'colour features ablated', \
     file using 5:6 lc rgb '#2ca02c' title 'as many random others (sd)'
