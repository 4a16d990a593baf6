# activations.gp - the feature maps of one node for one input: the input on the left, a grid
# of heatmaps (one per channel, one colour scale) on the right — the study's Figure 10.
# Parameters: image (x y r g b), maps (one index per channel: x y value), iw, ih, n, ncols,
# nrows, mw, mh, gap, lo, hi, title, caption.
load plotsdir.'/style.gp'

set multiplot title title font ',13'
unset grid
unset border
unset tics

# ---- the input
set origin 0.0, 0.1
set size 0.24, 0.75
set size ratio -1
set title caption font ',11'
set xrange [-0.5:iw - 0.5]
set yrange [-(ih - 0.5):0.5]
plot image using 1:2:3:4:5 with rgbimage notitle

# ---- the maps: channel numbers above each
set origin 0.25, 0.0
set size 0.64, 0.92
set title ''
set xrange [-0.5:ncols * (mw + gap) - gap - 0.5]
set yrange [-(nrows * (mh + gap)) + gap + 0.5:2.5]
# viridis
set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')
set cbrange [lo:hi]
set cblabel 'activation'
set cbtics out scale 0.5
set colorbox vertical user origin graph 1.02, graph 0.15 size character 1.5, graph 0.7
plot for [c = 0:n - 1] maps index c using 1:2:3 with image notitle, \
     for [c = 0:n - 1] '+' using ((c % ncols) * (mw + gap) + (mw - 1) / 2.0):(-(int(c / ncols)) * (mh + gap) + 1.4):(sprintf('%d', c)) every ::0::0 with labels font ',8' tc rgb '#404040' notitle
unset multiplot
