# gradcam.gp - Grad-CAM per input, one row each: the input | class probabilities | jet overlay
# of the map on the image (0.4 luminance + 0.6 colour), with a colour bar of the map scale.
# Parameters: n, iw, ih, classes, title, stem (data: stem_<i>_{image,probs,overlay}.dat),
# per row i: cap<i> (what the input is), sub<i> (true / predicted), ov<i> (map caption),
# wrong<i> (1 if the prediction is not the label).
load plotsdir.'/style.gp'

# matplotlib's jet, the colours of the overlay.
jc(x) = x < 0 ? 0 : x > 1 ? 1 : x
set palette model RGB functions jc(1.5 - abs(4 * gray - 3)), jc(1.5 - abs(4 * gray - 2)), jc(1.5 - abs(4 * gray - 1))

top = 48.0 / H
rowh = (1.0 - top) / n
set multiplot title title font ',13'
do for [i = 0:n - 1] {
    y0 = 1.0 - top - (i + 1) * rowh

    # ---- the input
    set origin 0.0, y0
    set size 0.25, rowh
    unset border
    unset tics
    unset grid
    unset colorbox
    unset xlabel
    set ylabel
    set size ratio -1
    set xrange [-0.5:iw - 0.5]
    set yrange [-(ih - 0.5):0.5]
    set title value(sprintf('cap%d', i)) font ',11'
    plot sprintf('%s_%d_image.dat', stem, i) using 1:2:3:4:5 with rgbimage notitle

    # ---- the class probabilities
    set origin 0.25, y0
    set size 0.40, rowh
    set size noratio
    set border 3 lw 1 lc rgb '#404040'
    set tics nomirror out scale 0.6
    set grid ytics lc rgb '#e0e0e0'
    set xrange [-0.6:classes - 0.4]
    set yrange [0:1.12]
    set xtics 1 nomirror
    set ytics 0.5 nomirror
    set xlabel 'class' offset 0, 0.5
    set ylabel 'probability'
    set boxwidth 0.7
    set style fill solid 0.9 border rgb '#ffffff'
    set title value(sprintf('sub%d', i)) font ',11'
    hl = value(sprintf('wrong%d', i)) ? 0xd62728 : 0x2ca02c
    plot sprintf('%s_%d_probs.dat', stem, i) using 1:2:($3 != 0 ? hl : 0xa6b8cc) with boxes lc rgb variable notitle, \
         '' using 1:2:($2 >= 0.01 ? sprintf('%.2f', $2) : '') with labels offset 0, 0.6 font ',8' notitle

    # ---- the overlay, with the map's colour bar
    set origin 0.66, y0
    set size 0.33, rowh
    unset border
    unset tics
    unset grid
    unset xlabel
    unset ylabel
    set size ratio -1
    set xrange [-0.5:iw - 0.5]
    set yrange [-(ih - 0.5):0.5]
    set cbrange [0:1]
    set cbtics 0.5 out scale 0.5
    set cblabel 'map (max = 1)'
    set colorbox vertical user origin graph 1.04, graph 0 size character 1.2, graph 1
    set title value(sprintf('ov%d', i)) font ',11'
    f = sprintf('%s_%d_overlay.dat', stem, i)
    plot f using 1:2:3:4:5 with rgbimage notitle, \
         f every ::0::0 using 1:2:(0) with points pt 7 ps 0 lc palette notitle
    unset colorbox
}
unset multiplot
