# sae_classes.gp - SAE features per class (colour, digit, both, mixed, dead), the models side by
# side. Parameters: file (class name, then per model the count), m, model0.., title.
load plotsdir.'/style.gp'

colours = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #7f7f7f'
set title title
set ylabel 'features'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set yrange [0:*]
plot for [j = 0:m - 1] file using (column(j + 2)):xtic(1) lc rgb word(colours, j + 1) \
         title value(sprintf('model%d', j)), \
     for [j = 0:m - 1] file using ($0 - 0.45 + (j + 0.5) * 0.9 / m):(column(j + 2)):(sprintf('%d', column(j + 2))) \
         with labels offset 0, 0.7 font ',9' notitle
