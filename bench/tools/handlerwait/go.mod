module github.com/wardenhq/warden/bench/tools/handlerwait

go 1.26
