# probe.gp - one probe image and the model's 10 class probabilities (predicted bar highlighted).
# Parameters: image (x y r g b, row 0 at the top), probs (class p predicted), iw, ih, classes,
# title, subtitle, wrong (1 if the prediction is not the label).
load plotsdir.'/style.gp'

set multiplot title title."\n".subtitle font ',13'

# ---- the image
set origin 0.0, 0.0
set size 0.36, 0.86
unset border
unset tics
unset grid
set size ratio -1
set xrange [-0.5:iw - 0.5]
set yrange [-(ih - 0.5):0.5]
plot image using 1:2:3:4:5 with rgbimage notitle

# ---- the probabilities
set origin 0.36, 0.0
set size 0.62, 0.86
set size noratio
set border 3 lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6
set grid ytics lc rgb '#e0e0e0'
set xrange [-0.6:classes - 0.4]
set yrange [0:1.08]
set xtics 1 nomirror
set ytics 0.2 nomirror
set xlabel 'class'
set ylabel 'probability'
set boxwidth 0.7
set style fill solid 0.9 border rgb '#ffffff'
hl = wrong ? 0xd62728 : 0x2ca02c
plot probs using 1:2:($3 != 0 ? hl : 0xa6b8cc) with boxes lc rgb variable notitle, \
     probs using 1:2:($2 >= 0.01 ? sprintf('%.2f', $2) : '') with labels offset 0, 0.7 font ',9' notitle
unset multiplot
