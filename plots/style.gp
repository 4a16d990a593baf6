# style.gp - terminal and common look, loaded by every figure script.
# Expects (from runner/plot.c): fmt ('png', 'pdf' or 'svg'), W, H (pixels), out.
set encoding utf8
if (fmt eq 'pdf') {
    # Same layout as the PNG: 72 px to the inch, so fonts keep their size.
    set terminal pdfcairo size (W / 72.0), (H / 72.0) font 'DejaVu Sans,10' noenhanced
} else {
    if (fmt eq 'svg') {
        set terminal svg size W, H font 'DejaVu Sans,10' noenhanced background '#ffffff'
    } else {
        if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
            set terminal pngcairo size W, H font 'DejaVu Sans,10' noenhanced
        } else {
            set terminal png size W, H noenhanced
        }
    }
}
set output out

set border lw 1 lc rgb '#404040'
set tics nomirror out scale 0.6 textcolor rgb '#303030'
set grid lt 1 lc rgb '#e6e6e6' lw 1
set key noautotitle
set title font ',12'

# One colour per split, the same in every figure. "train_eval" is the train split evaluated
# after each epoch ("train" itself holds the running per-step metrics).
split_colour(s) = (s eq 'train' || s eq 'train_eval') ? '#1f77b4' : (s eq 'val') ? '#ff7f0e' : (s eq 'test') ? '#2ca02c' : '#7f7f7f'
split_title(s) = (s eq 'train_eval') ? 'train (eval)' : s
