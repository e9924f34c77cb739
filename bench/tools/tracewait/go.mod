module github.com/wardenhq/warden/bench/tools/tracewait

go 1.26.8

require golang.org/x/exp v0.0.0-20260410095643-746e56fc9e2f
