module github.com/cybertensor/cybertensor

go 1.26
