# sae_density.gp - histogram of the SAE features' firing density (log10 of the fraction of
# inputs a feature fires on), one outline per model; dead features are left out (their count is
# in the caption). Parameters: file (bin centre, then per model the count), binw, m, cap0..,
# title.
load plotsdir.'/style.gp'

colours = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #7f7f7f'
set title title
set xlabel 'log10 firing density (fraction of inputs)'
set ylabel 'features'
set key top left font ',10'
set style fill transparent solid 0.35 border
plot for [j = 0:m - 1] file using 1:(column(j + 2)) with steps lw 2 lc rgb word(colours, j + 1) \
     title value(sprintf('cap%d', j))
