import json,sys,glob,os
rows=[]
for d in sys.argv[1:]:
    js=sorted(glob.glob(os.path.join(d,'*-full.json')))
    if not js: continue
    x=json.load(open(js[-1]))
    c={(r['workload'],r['target']):r for r in x['closed_loop']}
    o={r['target']:r for r in x['open_loop']}
    f=c[('chat-c64','go-floor')]; m=c[('chat-c64','warden-masking')]; w=c[('chat-c64','warden-full')]
    fc,mc,wc=[r['cpu_s_per_1k']*1000 for r in (f,m,w)]
    oth=max(r['other_cores'] for r in x['closed_loop']+x['open_loop'])
    print(f"{os.path.basename(d):8s} {x['machine']['commit'][:7]} floor {fc:5.0f} mask {mc:5.0f} full {wc:5.0f} full/floor {wc/fc:4.2f} audit+{wc-mc:4.0f} rps full/floor {w['rps']/f['rps']:4.2f} (mask {m['rps']/f['rps']:4.2f}) open+p99 full {o['warden-full']['added_p99_ms']:5.1f} floor {o['go-floor']['added_p99_ms']:4.1f} rate {x['open_rate']:.0f} other {oth:.2f}")
