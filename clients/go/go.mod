module github.com/tui-gateway/tui-gateway/clients/go

go 1.19
