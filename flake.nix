{
  description = "EventCore for Effect: a dev shell with Node 24 and PostgreSQL";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_24 pkgs.postgresql_15 ];
          # The test harness starts a throwaway PostgreSQL from these binaries when no server
          # answers on DATABASE_URL (or postgres://postgres@127.0.0.1:5432/test).
          shellHook = ''
            export PATH="$PWD/node_modules/.bin:$PATH"
            echo "EventCore dev shell: node $(node --version), $(postgres --version)"
          '';
        };
      });
    };
}
