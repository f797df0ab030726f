fn main() {
    let t = tch::Tensor::randn([2, 3], (tch::Kind::Float, tch::Device::Cpu));
    t.print();
    println!("cuda available: {}", tch::Cuda::is_available());
}
