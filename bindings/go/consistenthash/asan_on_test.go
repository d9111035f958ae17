//go:build asan

package consistenthash

// go test -asan instruments Go's memory too, which allocates.
const asanBuild = true
