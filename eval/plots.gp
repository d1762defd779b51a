# Plots in the manner of the paper's Figs 9-11, and the incremental-deployment
# sweep. Usage: gnuplot -e "dir='eval/results'" eval/plots.gp
if (!exists("dir")) dir = "eval/results"
set datafile separator ","
set terminal pngcairo size 900,600 font "sans,11"
set key top left
set grid
set xlabel "Concurrent requests"
set xrange [50:1050]
set xtics 100,100,1000
load_csv = dir."/load_sweep.csv"

set output dir."/fig9_response_time.png"
set title "Request response time (Fig. 9): mean (solid) and p99 (dashed)"
set ylabel "Response time (ms, log)"
set logscale y
set yrange [400:*]
plot load_csv using 1:2  skip 1 with linespoints lw 2 pt 7 lc rgb "#d62728" title "DNS round robin, mean", \
     load_csv using 1:6  skip 1 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "DNS nearest, mean", \
     load_csv using 1:10 skip 1 with linespoints lw 2 pt 9 lc rgb "#8c564b" title "DNS weighted RR, mean", \
     load_csv using 1:14 skip 1 with linespoints lw 2 pt 13 lc rgb "#1f77b4" title "AISID, mean", \
     load_csv using 1:3  skip 1 with lines dt 2 lw 1.5 lc rgb "#d62728" notitle, \
     load_csv using 1:7  skip 1 with lines dt 2 lw 1.5 lc rgb "#ff7f0e" notitle, \
     load_csv using 1:11 skip 1 with lines dt 2 lw 1.5 lc rgb "#8c564b" notitle, \
     load_csv using 1:15 skip 1 with lines dt 2 lw 1.5 lc rgb "#1f77b4" notitle
unset logscale y
set yrange [*:*]

set key bottom right
set output dir."/fig10_link_util_variance.png"
set title "Link bandwidth utilization variance (Fig. 10)"
set ylabel "Variance of link utilization"
set format y "%.1e"
plot load_csv using 1:4  skip 1 with linespoints lw 2 pt 7 lc rgb "#d62728" title "DNS round robin", \
     load_csv using 1:8  skip 1 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "DNS nearest", \
     load_csv using 1:12 skip 1 with linespoints lw 2 pt 9 lc rgb "#8c564b" title "DNS weighted RR", \
     load_csv using 1:16 skip 1 with linespoints lw 2 pt 13 lc rgb "#1f77b4" title "AISID"

set output dir."/fig11_compute_util_variance.png"
set title "Compute utilization variance (Fig. 11)"
set ylabel "Variance of server utilization (log)"
set logscale y
plot load_csv using 1:5  skip 1 with linespoints lw 2 pt 7 lc rgb "#d62728" title "DNS round robin", \
     load_csv using 1:9  skip 1 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "DNS nearest", \
     load_csv using 1:13 skip 1 with linespoints lw 2 pt 9 lc rgb "#8c564b" title "DNS weighted RR", \
     load_csv using 1:17 skip 1 with linespoints lw 2 pt 13 lc rgb "#1f77b4" title "AISID"
unset logscale y
set format y "%g"

# Incremental deployment: change against the DNS round-robin baseline, by the
# number of ingress gateways deployed, one line per number of egress gateways.
dep_csv = dir."/deploy_sweep.csv"
set xlabel "Ingress gateways deployed"
set xrange [-0.5:10.5]
set xtics 0,1,10
set key outside right
set ylabel "Change against DNS round robin (%)"
colors = "#7f7f7f #d62728 #ff7f0e #2ca02c #1f77b4"
do for [n in "500 1000"] {
  do for [m in "9:response_time:mean_response_time 10:link_util_var:link_utilization_variance 11:compute_util_var:compute_utilization_variance"] {
    col = int(word(system("echo ".m." | tr ':' ' '"), 1))
    name = word(system("echo ".m." | tr ':' ' '"), 2)
    what = word(system("echo ".m." | tr ':' ' '"), 3)
    set output dir."/deploy_".name."_".n.".png"
    set title "Incremental deployment, ".n." concurrent requests: ".system("echo ".what." | tr '_' ' '")
    plot for [e=0:4] dep_csv using 2:(($1==int(n) && $3==e) ? column(col) : 1/0) skip 1 with linespoints lw 2 pt 7 \
         lc rgb word(colors, e+1) title sprintf("%d egress", e)
  }
}
