# attack_images.gp - PGD at the largest epsilon, one row per input: the source | the
# perturbation (0.5 grey + delta, amplified; the factor in the caption) | the adversarial image.
# Parameters: n, iw, ih, title, stem (data: stem_<i>_{source,delta,adv}.dat), per row i:
# cap<i> (what the input is), dcap<i> (the amplification), acap<i> (the prediction).
load plotsdir.'/style.gp'

top = 60.0 / H
rowh = (1.0 - top) / n
set multiplot title title font ',12'
unset border
unset tics
unset grid
set size ratio -1
set xrange [-0.5:iw - 0.5]
set yrange [-(ih - 0.5):0.5]
do for [i = 0:n - 1] {
    y0 = 1.0 - top - (i + 1) * rowh
    do for [col = 0:2] {
        set origin col / 3.0, y0
        set size 1.0 / 3.0, rowh
        what = word('source delta adv', col + 1)
        cap = col == 0 ? value(sprintf('cap%d', i)) : \
              col == 1 ? value(sprintf('dcap%d', i)) : value(sprintf('acap%d', i))
        set title cap font ',10'
        plot sprintf('%s_%d_%s.dat', stem, i, what) using 1:2:3:4:5 with rgbimage notitle
    }
}
unset multiplot
