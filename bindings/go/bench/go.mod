// The benchmark and comparison against github.com/golang/groupcache. A
// module of its own so that the library's module requires nothing. Run it
// through ../go_test.sh, which finds groupcache (Debian's
// golang-github-golang-groupcache-dev, offline) and passes a go.mod naming
// it with -modfile: the Debian source has no go.mod of its own to replace to.
module github.com/chash/chash/bindings/go/bench

go 1.19

require github.com/chash/chash/bindings/go v0.0.0

replace github.com/chash/chash/bindings/go => ../
