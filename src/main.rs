fn main() {
    print!("{}", horolog::crd::crds_yaml().unwrap());
}
