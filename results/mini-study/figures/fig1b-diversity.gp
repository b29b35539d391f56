set terminal pngcairo size 1200,800 font 'DejaVu Sans,11' noenhanced
set output 'fig1b-diversity.png'
set title 'Expert diversity: mean subspace similarity of the routed experts (lower = more diverse)'
set xlabel 'k (top singular vectors)'
set ylabel 'subspace similarity'
set grid
set key outside right top
set logscale x 2
set xrange [1:64]
set yrange [0:*]
plot \
  'fig1b-diversity.dat' index 0 using 1:2 with linespoints lw 2.5 pt 7 lc rgb '#1f77b4' title 'dit-moe', \
  'fig1b-diversity.dat' index 1 using 1:2 with linespoints lw 2.5 pt 7 lc rgb '#ff7f0e' title 'promoe', \
  x / 128.0 with lines dt 2 lc rgb '#808080' title 'random subspaces (k / D)'
