# sae_heatmap.gp - per model (one row each), the feature x digit and feature x colour mean
# activations of the alive SAE features, each feature's column divided by its largest class
# mean, features in the order of features/order (colour, both, digit, mixed; within a class by
# the class they prefer). Parameters: file_digit<j>, file_colour<j> (10 rows x cols<j>
# matrices), cols<j>, cap<j>, m, title.
load plotsdir.'/style.gp'

unset grid
set palette defined (0 '#ffffff', 0.3 '#c6dbef', 0.6 '#4292c6', 1 '#08306b')
set cbrange [0:1]
set yrange [9.5:-0.5]
set ytics 0, 1, 9 font ',8'
set tics scale 0
set multiplot layout m, 2 title title font ',12'
do for [j = 0:m - 1] {
    c = value(sprintf('cols%d', j))
    set xrange [-0.5:c - 0.5]
    set xlabel 'feature (ordered)'
    set ylabel 'digit'
    set ytics ('0' 0, '1' 1, '2' 2, '3' 3, '4' 4, '5' 5, '6' 6, '7' 7, '8' 8, '9' 9)
    set title value(sprintf('cap%d', j)).' · x digit' font ',10'
    unset colorbox
    plot value(sprintf('file_digit%d', j)) matrix with image notitle
    set ylabel 'colour'
    set ytics ('red' 0, 'green' 1, 'blue' 2, 'yellow' 3, 'cyan' 4, 'magenta' 5, 'orange' 6, \
               'black' 7, 'purple' 8, 'brown' 9)
    set title value(sprintf('model%d', j)).' · x colour' font ',10'
    set colorbox
    plot value(sprintf('file_colour%d', j)) matrix with image notitle
}
unset multiplot
