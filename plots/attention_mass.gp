# attention_mass.gp - per model, the share of Grad-CAM and of saliency mass on background
# pixels (grouped bars), with the background's share of the pixels as a dashed reference line.
# Parameters: file ("label" gradcam% saliency% pixel% accuracy%), m, pixel (%), title, camname.
load plotsdir.'/style.gp'

set title title font ',12'
set ylabel 'share on the background (%)'
set xlabel 'model'
set yrange [0:105]
set ytics 20 nomirror
set xrange [-0.8:m - 0.2]
set grid ytics
set style fill solid 0.9 border rgb '#ffffff'
set boxwidth 0.34
set key bmargin center horizontal samplen 1.5 width 1
set bmargin 6
set xtics () nomirror
plot file using ($0 - 0.18):2:xtic(1) with boxes lc rgb '#d62728' title camname.' mass', \
     file using ($0 + 0.18):3 with boxes lc rgb '#1f77b4' title 'saliency mass', \
     file using ($0 - 0.18):2:(sprintf('%.1f', $2)) with labels offset 0, 0.7 font ',9' notitle, \
     file using ($0 + 0.18):3:(sprintf('%.1f', $3)) with labels offset 0, 0.7 font ',9' notitle, \
     pixel with lines dt 2 lw 2 lc rgb '#404040' title sprintf('background pixels (%.1f %%)', pixel)
