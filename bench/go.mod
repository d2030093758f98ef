module github.com/concurry/concurry/bench

go 1.26.0

replace github.com/concurry/concurry => ../

require (
	github.com/concurry/concurry v0.0.0-00010101000000-000000000000
	golang.org/x/sync v0.25.0
	golang.org/x/time v0.16.0
)
