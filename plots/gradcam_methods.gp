# gradcam_methods.gp - Grad-CAM variants side by side for the same inputs, one row per input:
# the input | one jet overlay per method (0.4 luminance + 0.6 colour), with the map's colour bar.
# Parameters: n, m (methods), iw, ih, title, stem (data: stem_<i>_image.dat,
# stem_<i>_overlay_<q>.dat), mname<q> (the method's name), per row i: cap<i> (what the input
# is), sub<i> (true / predicted), ov<i>_<q> (map caption), wrong<i> (1 if the prediction is
# not the label).
load plotsdir.'/style.gp'

jc(x) = x < 0 ? 0 : x > 1 ? 1 : x
set palette model RGB functions jc(1.5 - abs(4 * gray - 3)), jc(1.5 - abs(4 * gray - 2)), jc(1.5 - abs(4 * gray - 1))

top = 48.0 / H
rowh = (1.0 - top) / n
colw = 0.96 / (m + 1)
set multiplot title title font ',13'
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
do for [i = 0:n - 1] {
    y0 = 1.0 - top - (i + 1) * rowh

    # ---- the input, with what it is and what the model predicts
    set origin 0.0, y0
    set size colw, rowh
    unset colorbox
    set title value(sprintf('cap%d', i))."\n".value(sprintf('sub%d', i)) font ',10' \
        tc rgb (value(sprintf('wrong%d', i)) ? '#d62728' : '#202020')
    plot sprintf('%s_%d_image.dat', stem, i) using 1:2:3:4:5 with rgbimage notitle

    # ---- one overlay per method; the colour bar beside the last
    do for [q = 0:m - 1] {
        set origin (q + 1) * colw, y0
        set size colw, rowh
        set title value(sprintf('mname%d', q))."\n".value(sprintf('ov%d_%d', i, q)) font ',10' tc rgb '#202020'
        f = sprintf('%s_%d_overlay_%d.dat', stem, i, q)
        if (q == m - 1) {
            set cblabel 'map (max = 1)'
            set colorbox vertical user origin graph 1.04, graph 0 size character 1.2, graph 1
            plot f using 1:2:3:4:5 with rgbimage notitle, \
                 f every ::0::0 using 1:2:(0) with points pt 7 ps 0 lc palette notitle
            unset colorbox
        } else {
            plot f using 1:2:3:4:5 with rgbimage notitle
        }
    }
}
unset multiplot
