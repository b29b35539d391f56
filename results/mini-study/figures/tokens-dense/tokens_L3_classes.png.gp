set terminal pngcairo size 1000,800 font "DejaVu Sans,11"
set output 'results/mini-study/figures/tokens-dense/tokens_L3_classes.png'
set linetype 1 lc rgb '#1f77b4'
set linetype 2 lc rgb '#ff7f0e'
set linetype 3 lc rgb '#2ca02c'
set linetype 4 lc rgb '#d62728'
set linetype 5 lc rgb '#9467bd'
set linetype 6 lc rgb '#8c564b'
set linetype 7 lc rgb '#e377c2'
set linetype 8 lc rgb '#7f7f7f'
set linetype 9 lc rgb '#bcbd22'
set linetype 10 lc rgb '#17becf'
set linetype 11 lc rgb '#aec7e8'
set linetype 12 lc rgb '#ffbb78'
set linetype 13 lc rgb '#98df8a'
set linetype 14 lc rgb '#ff9896'
set linetype 15 lc rgb '#c5b0d5'
set linetype 16 lc rgb '#c49c94'
set linetype 17 lc rgb '#f7b6d2'
set linetype 18 lc rgb '#c7c7c7'
set linetype 19 lc rgb '#dbdb8d'
set linetype 20 lc rgb '#9edae5'
set linetype cycle 20
set datafile separator ','
set title "run 4988539d2150fc0c, block 3: t-SNE of 2560 tokens by class" noenhanced
set xlabel 't-SNE 1'
set ylabel 't-SNE 2'
set key outside right top
set size ratio -1
plot for [v=0:9] 'results/mini-study/figures/tokens-dense/tokens_L3.csv' every ::1 using (column(2) == v ? column(5) : NaN):6 with points pt 7 ps 0.5 lt (v - 0 + 1) title sprintf('class %d', v)
