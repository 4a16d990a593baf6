# heatmap.gp - a counts matrix with the count in every cell: confusion matrices (rows true,
# columns predicted) and colour statistics (rows label, columns colour).
# Parameters: file (matrix text, row r = y r), rows, cols, vmax, xnames, ynames, xlabel,
# ylabel, title, cblabel, xrotate.
load plotsdir.'/style.gp'

unset grid
set title title
set xlabel xlabel
set ylabel ylabel
set cblabel cblabel
set size ratio -1
set xrange [-0.5:cols - 0.5]
set yrange [rows - 0.5:-0.5]     # row 0 at the top
set cbrange [0:vmax]
set tics scale 0
set xtics ()
set ytics ()
do for [i = 1:cols] { set xtics add (word(xnames, i) i - 1) }
do for [j = 1:rows] { set ytics add (word(ynames, j) j - 1) }
if (xrotate) { set xtics rotate by 35 right }
set palette defined (0 '#f7fbff', 0.25 '#c6dbef', 0.5 '#6baed6', 0.75 '#2171b5', 1 '#08306b')
set cbtics out scale 0.5
set colorbox user origin graph 1.04, graph 0 size character 1.5, graph 1
set border lw 1 lc rgb '#808080'
# Light text on dark cells.
dark(v) = v > 0.55 * vmax
label(v) = sprintf('%d', v)
plot file matrix with image pixels notitle, \
     file matrix using 1:2:(dark($3) ? label($3) : '') with labels tc rgb '#ffffff' font ',9' notitle, \
     file matrix using 1:2:(dark($3) ? '' : label($3)) with labels tc rgb '#202020' font ',9' notitle
