//go:build !asan

package consistenthash

const asanBuild = false
