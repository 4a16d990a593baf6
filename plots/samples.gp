# samples.gp - a grid of images with their label, colour and prediction (wrong ones in red).
# Parameters: images (one index block per image: x y r g b, row 0 at the top), labels
# (x y "text" wrong), n, xlo, xhi, ylo, yhi (data units = image pixels), title.
load plotsdir.'/style.gp'

unset border
unset tics
unset grid
set title title
set size ratio -1
set lmargin at screen 0.01
set rmargin at screen 0.99
set bmargin at screen 0.01
set tmargin at screen 1 - 40.0 / H
set xrange [xlo:xhi]
set yrange [ylo:yhi]
plot for [i = 0:n - 1] images index i using 1:2:3:4:5 with rgbimage notitle, \
     labels using 1:2:($4 == 0 ? stringcolumn(3) : '') with labels tc rgb '#202020' font ',9' notitle, \
     labels using 1:2:($4 != 0 ? stringcolumn(3) : '') with labels tc rgb '#d00000' font ',9' notitle
