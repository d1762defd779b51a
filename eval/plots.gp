# One figure per paper figure (Figs 9-11), the DNS cost curve, and the
# incremental-deployment sweep. Linear axes, a legend for every line, 95%
# confidence intervals as error bars, the paper's number marked.
# Usage: gnuplot -e "dir='eval/results'" eval/plots.gp   (needs awk)
if (!exists("dir")) dir = "eval/results"
set datafile separator ","
set terminal pngcairo size 1000,640 font "sans,11"
set grid
set key below
set bars small
load_csv = dir."/load_sweep.csv"
dep_csv = dir."/deploy_sweep.csv"
curve_csv = dir."/dns_curve.csv"
# Rows of the load sweep for one link capacity and one scenario.
sel(g, sc) = sprintf("< awk -F, 'NR>1 && $1==%s && $3==\"%s\"' '%s'", g, sc, load_csv)
scen = "dns_rr dns_nearest dns_weighted aisid"
names = "DNS_round_robin DNS_nearest DNS_capacity-weighted AISID"
color = "#d62728 #ff7f0e #8c564b #1f77b4"
ptype = "7 5 9 13"
nm(i) = system("echo ".word(names, i)." | tr '_' ' '")
# The two link capacities of the sweep (the defaults and "links in use").
gdef = system("awk -F, 'NR==2{print $1}' '".load_csv."'")
gload = system("awk -F, 'NR>1 && $1!=".gdef."{print $1; exit}' '".load_csv."'")

set xlabel "Concurrent requests"
set xrange [50:1050]
set xtics 100,100,1000

# ---- Fig. 9: initiation latency, absolute ----------------------------------
set output dir."/fig9_initiation_latency.png"
set title "Fig. 9: service request initiation latency (mean, 95% CI)\nsolid: first byte without handshake; dashed: with the TCP handshake"
set ylabel "Initiation latency (ms)"
set yrange [0:*]
plot for [i=1:4] sel(gdef, word(scen,i)) using 2:4:5 with yerrorlines lw 2 pt (int(word(ptype,i))) lc rgb word(color,i) title nm(i)." (no handshake)", \
     for [i=1:4] sel(gdef, word(scen,i)) using 2:6:7 with yerrorlines lw 2 dt 2 pt (int(word(ptype,i))) lc rgb word(color,i) title nm(i)." (with handshake)"

# ---- Fig. 9: the change against DNS round robin, with the paper's number ----
set output dir."/fig9_change.png"
set title "Fig. 9: AISID against DNS round robin (mean, 95% CI); the paper: -61.3%"
set ylabel "Change against DNS round robin (%)"
set yrange [-100:10]
plot sel(gdef, "aisid") using 2:28:29 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "initiation latency, no handshake", \
     sel(gdef, "aisid") using 2:30:31 with yerrorlines lw 2 pt 5 lc rgb "#2ca02c" title "initiation latency, with handshake", \
     sel(gdef, "aisid") using 2:32:33 with yerrorlines lw 2 pt 9 lc rgb "#7f7f7f" title "end-to-end completion time", \
     -61.3 with lines lw 2 dt 3 lc rgb "black" title "paper: -61.3%"

# ---- Fig. 9: the DNS cost curve -------------------------------------------
set output dir."/fig9_dns_curve.png"
set title "What DNS costs: initiation latency change (no handshake) against the GSLB TTL\n500 concurrent requests, mean and 95% CI; the hit ratio comes out of the TTL"
set xlabel "DNS TTL (s; log scale, 0 drawn at 0.5)"
set logscale x
set xrange [0.4:400]
set xtics ("0" 0.5, "1" 1, "2" 2, "5" 5, "10" 10, "20" 20, "30" 30, "60" 60, "120" 120, "300" 300)
set ylabel "Change against DNS round robin (%)"
set yrange [-100:0]
csel(r, a) = sprintf("< awk -F, 'NR>1 && $1==\"%s\" && $3==%d' '%s'", r, a, curve_csv)
tx(t) = t == 0 ? 0.5 : t
plot csel("local", 5) using (tx($2)):10:11 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "local resolver, access 5 ms", \
     csel("local", 0) using (tx($2)):10:11 with yerrorlines lw 1.5 dt 2 pt 6 lc rgb "#1f77b4" title "local resolver, access 0 ms", \
     csel("local", 10) using (tx($2)):10:11 with yerrorlines lw 1.5 dt 4 pt 4 lc rgb "#1f77b4" title "local resolver, access 10 ms", \
     csel("regional", 5) using (tx($2)):10:11 with yerrorlines lw 2 pt 5 lc rgb "#ff7f0e" title "regional resolvers, access 5 ms", \
     csel("central", 5) using (tx($2)):10:11 with yerrorlines lw 2 pt 9 lc rgb "#d62728" title "central resolver, access 5 ms", \
     csel("local", 5) using (tx($2)):12:13 with yerrorlines lw 1.5 dt 3 pt 7 lc rgb "#2ca02c" title "local, access 5 ms, with handshake", \
     -61.3 with lines lw 2 dt 3 lc rgb "black" title "paper: -61.3%"
unset logscale x
set xlabel "Concurrent requests"
set xrange [50:1050]
set xtics 100,100,1000

# ---- Fig. 10: link balance -------------------------------------------------
set output dir."/fig10_link_balance.png"
set title "Fig. 10: link balance, AISID against DNS round robin (mean, 95% CI); the paper: -32.8% (variance)"
set ylabel "Change against DNS round robin (%)"
set yrange [-100:20]
plot sel(gdef, "aisid") using 2:34:35 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "variance, directed, ".gdef." Gbit/s", \
     sel(gdef, "aisid") using 2:38:39 with yerrorlines lw 2 pt 5 lc rgb "#2ca02c" title "CV², undirected, ".gdef." Gbit/s", \
     sel(gload, "aisid") using 2:34:35 with yerrorlines lw 2 dt 2 pt 6 lc rgb "#1f77b4" title "variance, directed, ".gload." Gbit/s", \
     sel(gload, "aisid") using 2:38:39 with yerrorlines lw 2 dt 2 pt 4 lc rgb "#2ca02c" title "CV², undirected, ".gload." Gbit/s", \
     -32.8 with lines lw 2 dt 3 lc rgb "black" title "paper: -32.8%"

set output dir."/fig10_link_cv2.png"
set title "Fig. 10: link utilization CV² (undirected links, ".gload." Gbit/s links in use; mean, 95% CI)"
set ylabel "CV² of link utilization"
set yrange [0:*]
plot for [i=1:4] sel(gload, word(scen,i)) using 2:16:17 with yerrorlines lw 2 pt (int(word(ptype,i))) lc rgb word(color,i) title nm(i)

# ---- Fig. 11: compute balance ---------------------------------------------
set output dir."/fig11_compute_variance.png"
set title "Fig. 11: variance of server utilization (mean, 95% CI)"
set ylabel "Variance of compute utilization"
set yrange [0:*]
set format y "%.3f"
plot for [i=1:4] sel(gdef, word(scen,i)) using 2:22:23 with yerrorlines lw 2 pt (int(word(ptype,i))) lc rgb word(color,i) title nm(i)
set format y "%g"

set output dir."/fig11_change.png"
set title "Fig. 11: compute variance, AISID against each DNS baseline\n(mean, 95% CI); the paper: -12.3%"
set ylabel "Change (%)"
set yrange [*:*]
plot sel(gdef, "aisid") using 2:40:41 with yerrorlines lw 2 pt 7 lc rgb "#d62728" title "variance vs DNS round robin", \
     sel(gdef, "aisid") using 2:42:43 with yerrorlines lw 2 dt 2 pt 6 lc rgb "#d62728" title "capacity-weighted variance vs round robin", \
     sel(gdef, "aisid") using 2:44:45 with yerrorlines lw 2 pt 9 lc rgb "#8c564b" title "variance vs capacity-weighted DNS", \
     sel(gdef, "aisid") using 2:46:47 with yerrorlines lw 2 dt 2 pt 8 lc rgb "#8c564b" title "capacity-weighted variance vs weighted DNS", \
     -12.3 with lines lw 2 dt 3 lc rgb "black" title "paper: -12.3%"

# ---- Incremental deployment -------------------------------------------------
# Change against the DNS baseline (nothing deployed) by ingress gateways
# deployed, one line per number of egress gateways; undeployed providers keep
# their legacy DNS traffic.
set xlabel "Ingress gateways deployed"
set xrange [-0.5:10.5]
set xtics 0,1,10
set yrange [*:*]
ecol = "#7f7f7f #d62728 #ff7f0e #2ca02c #1f77b4"
dsel(n, e) = sprintf("< awk -F, 'NR>1 && $1==%s && $3==%d' '%s'", n, e, dep_csv)
do for [n in "500 1000"] {
  do for [m in "28:initiation_latency 32:completion_time 38:link_cv2 40:compute_var"] {
    c = int(system("echo ".m." | cut -d: -f1"))
    what = system("echo ".m." | cut -d: -f2")
    set output dir."/deploy_".what."_".n.".png"
    set title "Incremental deployment, ".n." concurrent requests: ".system("echo ".what." | tr '_' ' '")." (mean, 95% CI)"
    set ylabel "Change against DNS round robin (%)"
    plot for [e=0:4] dsel(n, e) using 2:c:c+1 with yerrorlines lw 2 pt 7 lc rgb word(ecol, e+1) title sprintf("%d egress", e)
  }
}
