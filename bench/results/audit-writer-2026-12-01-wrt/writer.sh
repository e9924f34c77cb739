#!/bin/bash
# writer.sh BIN PROF N: µs of CPU per append in the log's writer goroutines (Log.run + Log.flushLoop) and the total
bin=$1; prof=$2; n=$3
go tool pprof -top -cum -unit=ms "$bin" "$prof" 2>/dev/null | awk -v n=$n '
/Total samples/{for(i=1;i<=NF;i++) if($i=="=") {t=$(i+1); sub("ms","",t); sub("s$","",t)}}
/audit\.\(\*Log\)\.run$/{r=$4} /audit\.\(\*Log\)\.flushLoop$/{f=$4}
END{gsub("ms","",r); gsub("ms","",f); printf "writer %.1f µs/append (run %.1f, flushLoop %.1f)\n", (r+f)*1000/n, r*1000/n, f*1000/n}'
