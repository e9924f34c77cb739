#!/bin/bash
# two more alternated pairs after CI (same builds as ab29.sh, base first), to narrow the means.
PAIRS="5 6" ORDER="base new" PROFILE=0 exec bash "$(dirname "$0")/ab29.sh"
