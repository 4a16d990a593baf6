# attack_images.gp - PGD at one epsilon, one row per (model, input): the source | the
# perturbation (0.5 grey + delta, amplified; the factor in the caption) | the adversarial image |
# the class probabilities (bars: adversarial, the attacked class dark; dots: clean).
# Parameters: n (rows), iw, ih, classes, title, stem (data: stem_<row>_{source,delta,adv}.dat,
# stem_<row>_probs.dat: class p_adv attacked p_clean), per row: cap<row> (model and input),
# dcap<row> (the amplification), acap<row> (the prediction), pcap<row> (the attacked class).
load plotsdir.'/style.gp'

top = 60.0 / H
rowh = (1.0 - top) / n
set multiplot title title font ',12'
do for [i = 0:n - 1] {
    y0 = 1.0 - top - (i + 1) * rowh
    unset border
    unset tics
    unset grid
    unset xlabel
    unset ylabel
    set size ratio -1
    set xrange [-0.5:iw - 0.5]
    set yrange [-(ih - 0.5):0.5]
    do for [col = 0:2] {
        set origin col * 0.2, y0
        set size 0.2, rowh
        what = word('source delta adv', col + 1)
        cap = col == 0 ? value(sprintf('cap%d', i)) : \
              col == 1 ? value(sprintf('dcap%d', i)) : value(sprintf('acap%d', i))
        set title cap font ',10'
        plot sprintf('%s_%d_%s.dat', stem, i, what) using 1:2:3:4:5 with rgbimage notitle
    }
    set origin 0.62, y0
    set size 0.36, rowh
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
    set title value(sprintf('pcap%d', i)) font ',10'
    plot sprintf('%s_%d_probs.dat', stem, i) using 1:2:($3 != 0 ? 0xd62728 : 0xa6b8cc) \
         with boxes lc rgb variable notitle, \
         '' using 1:4 with points pt 7 ps 0.8 lc rgb '#404040' notitle, \
         '' using 1:2:($2 >= 0.01 ? sprintf('%.2f', $2) : '') with labels offset 0, 0.6 \
         font ',8' notitle
}
unset multiplot
