module github.com/chash/chash/bindings/go

go 1.19
